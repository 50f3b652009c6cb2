//! Every layer's forward/backward on hostile shapes, values and layouts.
//!
//! Each input is decoded twice: as a tutorial-layers case (format unchanged,
//! so the committed seeds and findings keep their meaning) and as a case for
//! the layers beyond the tutorial (`extra_layers`).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use gradverify_fuzz::{extra_layers, layers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(case) = layers::Case::arbitrary_take_rest(Unstructured::new(data)) {
        case.run();
    }
    if let Ok(case) = extra_layers::Case::arbitrary_take_rest(Unstructured::new(data)) {
        case.run();
    }
});
