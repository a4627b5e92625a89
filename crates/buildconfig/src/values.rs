//! The validated values of a configuration, [`LocationName`] and [`Registry`], whose rules live
//! in `dagster-deploy-types` (the session and the registry client apply the same ones), and
//! [`Problem`], what is wrong with a value before its position in a file is attached.

use dagster_deploy_types::{InvalidLocationName, InvalidRegistry};

pub use dagster_deploy_types::{LocationName, Registry};

/// What is wrong with a value and what to do about it, before a position is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub help: String,
}

impl From<InvalidLocationName> for Problem {
    fn from(invalid: InvalidLocationName) -> Self {
        Problem {
            problem: invalid.to_string(),
            help: invalid.help().to_owned(),
        }
    }
}

impl From<InvalidRegistry> for Problem {
    fn from(invalid: InvalidRegistry) -> Self {
        Problem {
            problem: invalid.to_string(),
            help: invalid.help().to_owned(),
        }
    }
}
