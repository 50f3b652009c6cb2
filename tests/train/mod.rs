//! The reference run (issue 5, "The run"): training loop, outputs, the
//! verification gate, the command line, and a short run on the embedded digits.

mod cli;
mod digits;
mod models;
mod run;
