//! The MLP's loss, gradient and accuracy on hostile configurations and labels;
//! and (each input decoded a second time) the MlpBn and ConvNet losses and
//! gradients on hostile sizes, batches and labels (`extra_layers` model cases).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use gradverify_fuzz::{extra_layers, model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(case) = model::Case::arbitrary_take_rest(Unstructured::new(data)) {
        case.run();
    }
    if let Ok(case) = extra_layers::Case::arbitrary_take_rest(Unstructured::new(data))
        && case.is_model()
    {
        case.run();
    }
});
