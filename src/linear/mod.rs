//! Step 10, models: binary logistic regression with scikit-learn/liblinear's objective on sparse rows,
//! solved by liblinear's dual coordinate descent ([`dual`], default) or trust-region Newton method ([`tron`]),
//! behind linfa's `Fit` / `PredictInplace` traits.
//!
//! We own the solver because linfa-logistic accepts dense records only (see [`logreg`]); a test checks
//! both agree on small dense data.

pub mod dual;
pub mod logreg;
pub mod tron;

pub use dual::{DualParams, DualRows};
pub use logreg::{expit, ClassWeight, LogRegError, LogRegModel, LogRegParams, Solver, SolverInfo};

