//! Step 10, models: binary logistic regression with scikit-learn/liblinear's objective on sparse rows,
//! solved by liblinear's trust-region Newton method, behind linfa's `Fit` / `PredictInplace` traits.
//!
//! We own the solver because linfa-logistic accepts dense records only (see [`logreg`]); a test checks
//! both agree on small dense data.

pub mod logreg;
pub mod tron;

pub use logreg::{expit, ClassWeight, LogRegError, LogRegModel, LogRegParams, SolverInfo};

