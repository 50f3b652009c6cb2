//! Snapshots (top-level `snapshots/`, `layer_*.snap`) of small worked
//! examples of the new layers: inputs, output, `dx` and parameter gradients
//! for a fixed non-uniform `dout`, rounded to 6 decimals. A change to any
//! forward or backward shows up as a snapshot diff.

use super::*;
use crate::layer::Layer;
use ndarray::{Array, ArrayD, arr1, arr2};
use serde_json::{Value, json};

/// Rounded values of an array, with its shape.
fn rounded(a: &ArrayD<f64>) -> Value {
    json!({
        "shape": a.shape(),
        "values": a.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>(),
    })
}

/// Runs forward and backward and records everything.
fn worked(layer: &mut dyn Layer<f64>, x: &ArrayD<f64>, dout: &ArrayD<f64>) -> Value {
    let y = layer.forward(&[x.view()]).unwrap();
    let dx = layer.backward(dout.view()).unwrap().remove(0);
    let params: Vec<Value> = layer
        .params()
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "value": rounded(&p.value.to_owned()),
                "grad": rounded(&p.grad.unwrap().to_owned()),
            })
        })
        .collect();
    json!({
        "layer": layer.name(),
        "x": rounded(x),
        "y": rounded(&y),
        "dout": rounded(dout),
        "dx": rounded(&dx),
        "params": params,
    })
}

fn snapshot(name: &str, value: Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_json_snapshot!(name, value));
}

#[test]
fn element_wise_layers() {
    let x = arr1(&[-2.0, -0.5, 0.0, 0.5, 2.0]).into_dyn();
    let dout = arr1(&[1.0, -2.0, 3.0, 0.5, -1.0]).into_dyn();
    snapshot("layer_tanh", worked(&mut Tanh::new(), &x, &dout));
    snapshot("layer_softplus", worked(&mut Softplus::new(), &x, &dout));
    snapshot(
        "layer_leaky_relu",
        worked(&mut LeakyRelu::new(0.1).unwrap(), &x, &dout),
    );
    let keep = arr1(&[true, false, true, false, true]).into_dyn();
    let mut d = Dropout::new(0.5, 0).unwrap().with_fixed_mask(&keep);
    snapshot("layer_dropout_fixed_mask", worked(&mut d, &x, &dout));
}

#[test]
fn batch_normalization_train_and_eval() {
    let x = arr2(&[[0.0, 1.0], [1.0, 3.0], [5.0, 2.0]]).into_dyn();
    let dout = arr2(&[[1.0, 0.0], [0.0, 1.0], [-0.5, 0.25]]).into_dyn();
    let mut bn = BatchNormalization::with_params(arr1(&[1.0, 2.0]), arr1(&[0.0, 1.0])).unwrap();
    let train = worked(&mut bn, &x, &dout);
    let running = json!({
        "running_mean": bn.running_mean().iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>(),
        "running_var": bn.running_var().iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>(),
    });
    bn.set_training(false);
    let eval = worked(&mut bn, &x, &dout);
    snapshot(
        "layer_batch_norm",
        json!({ "train": train, "running_after_one_batch": running, "eval": eval }),
    );
}

#[test]
fn convolution_with_padding_and_stride() {
    let x = Array::from_shape_vec((1, 1, 3, 3), (1..=9).map(f64::from).collect())
        .unwrap()
        .into_dyn();
    let w =
        Array::from_shape_vec((2, 1, 2, 2), vec![1.0, 0.0, 0.0, -1.0, 0.5, 0.5, 0.5, 0.5]).unwrap();
    let mut conv = Convolution::new(w, arr1(&[0.5, -1.0]), 2, 1).unwrap();
    let dout = Array::from_shape_vec((1, 2, 2, 2), vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 0.5, 1.0])
        .unwrap()
        .into_dyn();
    snapshot("layer_convolution", worked(&mut conv, &x, &dout));
}

#[test]
fn pooling_with_ties() {
    let x = Array::from_shape_vec(
        (1, 1, 4, 4),
        vec![
            1.0, 3.0, -1.0, 0.0, 2.0, 0.5, -2.0, -0.5, 4.0, 4.0, 1.0, 1.0, 0.0, 4.0, 1.0, 1.0,
        ],
    )
    .unwrap()
    .into_dyn();
    let dout = Array::from_shape_vec((1, 1, 2, 2), vec![10.0, 20.0, 30.0, 40.0])
        .unwrap()
        .into_dyn();
    snapshot(
        "layer_max_pooling_ties",
        worked(&mut MaxPooling::new(2, 2, 2, 0).unwrap(), &x, &dout),
    );
    snapshot(
        "layer_average_pooling",
        worked(&mut AveragePooling::new(2, 2, 2, 0).unwrap(), &x, &dout),
    );
}
