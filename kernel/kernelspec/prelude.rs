use revmod::prelude::*;
use revmod::show::{DataFrameShow, Show};
