//! Prints the report of a passing and a failing check (for eyeballing).
use gradverify::check::{CheckConfig, check};
use gradverify::layers::Sigmoid;
use gradverify::{Layer, Result};
use ndarray::{ArrayD, ArrayViewD, array};

struct Twice(Sigmoid<f64>);
impl Layer<f64> for Twice {
    fn name(&self) -> String {
        "SigmoidTimesTwoBug".into()
    }
    fn num_inputs(&self) -> usize {
        1
    }
    fn forward(&mut self, i: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
        self.0.forward(i)
    }
    fn backward(&mut self, d: ArrayViewD<'_, f64>) -> Result<Vec<ArrayD<f64>>> {
        Ok(self.0.backward(d)?.into_iter().map(|g| g * 2.0).collect())
    }
}

fn main() {
    let x = array![[0.5, -1.0, 2.0], [1.5, 0.1, -0.7]].into_dyn();
    let r = check(
        &mut Sigmoid::<f64>::new(),
        std::slice::from_ref(&x),
        &CheckConfig::default(),
    )
    .unwrap();
    println!("{r}");
    let r = check(&mut Twice(Sigmoid::new()), &[x], &CheckConfig::default()).unwrap();
    println!("{r}");
    println!("{}", r.to_json());
}
