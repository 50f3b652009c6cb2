//! The MLP's loss, gradient and accuracy on hostile configurations and labels.
#![no_main]

use gradverify_fuzz::model::Case;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: Case| case.run());
