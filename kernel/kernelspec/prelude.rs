use revmod::prelude::*;
use revmod::show::{DataFrameShow, Show};
// Progress lines of the long steps (labeling, scoring, downloads) stream into the running cell; the
// support crate itself never prints.
revmod::progress::draw_on_stderr();
