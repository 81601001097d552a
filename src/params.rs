//! Parameter checking, linfa-style: every step's `...Params` has a `check()` that turns a bad value into a
//! [`ParamError`] before the step does any work (each step calls it first), so that a wrong setting in a
//! notebook cell fails at once, naming the field, instead of deep inside a fit or after minutes of scoring.
//!
//! The models have their own typed errors ([`crate::text::TfidfError`], [`crate::linear::LogRegError`]);
//! [`ParamError`] wraps them where a step's parameters hold a model's.

use std::fmt;

/// A step parameter with a value the step cannot work with.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamError {
    /// A share, probability or threshold outside the open interval (0, 1).
    OutsideUnitInterval {
        /// The parameter (`test_size`, `fallback_threshold`, ...).
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A number that must be positive (and finite) is not.
    NotPositive {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A count or size that must be at least 1 is 0 (`part_size`, `batch_rows`, ...).
    Zero {
        /// The parameter.
        name: &'static str,
    },
    /// A list that must not be empty is.
    Empty {
        /// The parameter.
        name: &'static str,
    },
    /// A name that is not one of the allowed ones (a label, a target column).
    Unknown {
        /// The parameter.
        name: &'static str,
        /// The value given.
        value: String,
        /// What it may be.
        allowed: Vec<String>,
    },
    /// The same name twice where each must appear once.
    Repeated {
        /// The parameter.
        name: &'static str,
        /// The repeated value.
        value: String,
    },
    /// The TF-IDF parameters of a step.
    Tfidf(crate::text::TfidfError),
    /// The logistic-regression parameters of a step.
    LogReg(crate::linear::LogRegError),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::OutsideUnitInterval { name, value } => write!(f, "{name} must lie strictly between 0 and 1, got {value}"),
            ParamError::NotPositive { name, value } => write!(f, "{name} must be a positive number, got {value}"),
            ParamError::Zero { name } => write!(f, "{name} must be at least 1"),
            ParamError::Empty { name } => write!(f, "{name} must not be empty"),
            ParamError::Unknown { name, value, allowed } => write!(f, "{name}: unknown {value:?} (one of {})", allowed.join(", ")),
            ParamError::Repeated { name, value } => write!(f, "{name}: {value:?} appears twice"),
            ParamError::Tfidf(e) => write!(f, "TF-IDF parameters: {e}"),
            ParamError::LogReg(e) => write!(f, "logistic regression parameters: {e}"),
        }
    }
}

impl std::error::Error for ParamError {}

impl From<crate::text::TfidfError> for ParamError {
    fn from(e: crate::text::TfidfError) -> Self {
        ParamError::Tfidf(e)
    }
}

impl From<crate::linear::LogRegError> for ParamError {
    fn from(e: crate::linear::LogRegError) -> Self {
        ParamError::LogReg(e)
    }
}

/// `value` strictly between 0 and 1.
pub(crate) fn unit_open(name: &'static str, value: f64) -> Result<(), ParamError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(ParamError::OutsideUnitInterval { name, value })
    }
}

/// `value` positive and finite.
pub(crate) fn positive(name: &'static str, value: f64) -> Result<(), ParamError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ParamError::NotPositive { name, value })
    }
}

/// `value` at least 1.
pub(crate) fn nonzero(name: &'static str, value: usize) -> Result<(), ParamError> {
    if value == 0 {
        Err(ParamError::Zero { name })
    } else {
        Ok(())
    }
}

/// Every name of `values` one of `allowed`, none twice.
pub(crate) fn known_names(name: &'static str, values: &[String], allowed: &[&str]) -> Result<(), ParamError> {
    for (i, v) in values.iter().enumerate() {
        if !allowed.contains(&v.as_str()) {
            let allowed = allowed.iter().map(|s| s.to_string()).collect();
            return Err(ParamError::Unknown { name, value: v.clone(), allowed });
        }
        if values[..i].contains(v) {
            return Err(ParamError::Repeated { name, value: v.clone() });
        }
    }
    Ok(())
}
