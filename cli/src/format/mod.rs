//! Output formatting: Go's tabwriter, a small Go-template evaluator, and the table
//! writer that ties them together the way the docker CLI's `formatter.Context` does.

pub mod indent;
pub mod table;
pub mod tabwriter;
pub mod template;
