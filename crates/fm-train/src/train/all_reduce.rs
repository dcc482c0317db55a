//! What the ranks of a group exchange: a check that they start the same run at the same step,
//! every step's gradients and loss summed over them, and whether any was asked to stop.
//!
//! Each rank's loss and gradients are already scaled to the global batch (`replicas`), so
//! their sums are the global batch's loss and gradient, and every rank then takes the same
//! optimizer step. The gradients travel as one flat `f32` buffer per step: each parameter's
//! entries in the model's visiting order, after a flag that says whether the rank has a
//! gradient for it (a parameter no rank's loss reached gets none, as on one device).

use super::TrainError;
use super::replicas::StepOutput;
use crate::collective::Collective;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

/// What every rank must agree on before the first step.
pub(super) struct StartCheck {
    /// Whether this rank's set-up succeeded.
    pub ready: bool,
    /// The step it starts from (its checkpoint when resuming).
    pub step: usize,
    /// The run's planned steps, its global batch and the network's parameter count.
    pub plan: [usize; 3],
    /// The sum of the network's weights, as [`weight_sum`] computes it.
    pub weights: f64,
}

/// All-reduces the ranks' [`StartCheck`]s: an error when any rank failed to set up (it reports
/// its own error) or when they differ (different folders, flags or checkpoints, or weights
/// initialised differently). A rank whose values exceed the others' always sees the difference.
pub(super) fn agree_to_start(group: &dyn Collective, check: &StartCheck) -> Result<(), String> {
    let [steps, batch, params] = check.plan;
    let same_run = "every rank must train the same run folder, on a file system they share, with the same flags";
    let other_weights = "the ranks drew different random weights (another --seed, or devices of different backends): give every rank the same flags and the same kind of device";
    // What is compared, the value that travels (the weights' sum as its f64 bits), and what
    // an error says.
    let entries = [
        ("start step", check.step, check.step.to_string(), same_run),
        ("planned steps", steps, steps.to_string(), same_run),
        ("global batch", batch, batch.to_string(), same_run),
        ("parameter count", params, params.to_string(), same_run),
        (
            "initial weights (their sum)",
            check.weights.to_bits() as usize,
            check.weights.to_string(),
            other_weights,
        ),
    ];
    let mut buf = vec![f32::from(u8::from(check.ready))];
    buf.extend(entries.iter().flat_map(|e| limbs(e.1)));
    group
        .all_reduce_sum(&mut buf, "the start check")
        .map_err(|e| e.to_string())?;
    let n = group.size();
    if buf[0] as usize != n {
        return Err(format!(
            "{} of {n} ranks could not start (their own messages say why)",
            n - buf[0] as usize
        ));
    }
    for ((name, value, shown, hint), sums) in entries.iter().zip(buf[1..].chunks(4)) {
        if sums
            .iter()
            .zip(limbs(*value))
            .any(|(&s, l)| s != l * n as f32)
        {
            return Err(format!(
                "the ranks disagree on the {name} (rank {} has {shown}): {hint}",
                group.rank()
            ));
        }
    }
    Ok(())
}

/// The sum of every weight of `model`, added in `f64` on the host in the model's order: the
/// same bits on every rank that holds the same weights, whatever its backend.
pub(super) fn weight_sum<M: Module>(model: &M) -> f64 {
    struct Sum(f64);
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 += param
                .val()
                .into_data()
                .iter::<f32>()
                .map(f64::from)
                .sum::<f64>();
        }
    }
    let mut sum = Sum(0.0);
    model.visit(&mut sum);
    sum.0
}

/// `v` as four 16-bit limbs: sums of up to 256 ranks stay exact in `f32`.
fn limbs(v: usize) -> [f32; 4] {
    let v = v as u64;
    std::array::from_fn(|i| ((v >> (16 * i)) & 0xFFFF) as f32)
}

/// Sums step `step`'s loss and gradients over the group; one rank's output as it is.
pub(super) fn sum_step<M: Module>(
    group: &dyn Collective,
    model: &M,
    output: StepOutput,
    step: usize,
) -> Result<StepOutput, TrainError> {
    if group.size() == 1 {
        return Ok(output);
    }
    let StepOutput { loss, grads, probe } = output;
    let loss_device = loss.device();
    let mut flat = Flatten {
        grads: &grads,
        buf: vec![loss.into_scalar::<f32>()],
        device: None,
    };
    model.visit(&mut flat);
    let (mut buf, device) = (flat.buf, flat.device.unwrap_or(loss_device.clone()));
    group
        .all_reduce_sum(&mut buf, &format!("the gradients of step {}", step + 1))
        .map_err(|e| TrainError::Collective(e.to_string()))?;
    let mut unflatten = Unflatten {
        grads,
        buf: &buf[1..],
        device: &device,
    };
    model.visit(&mut unflatten);
    let loss = Tensor::<1>::from_data(TensorData::new(vec![buf[0]], [1]), &loss_device);
    Ok(StepOutput {
        loss,
        grads: unflatten.grads,
        probe,
    })
}

/// Whether any rank asks to stop after this step (a signal reaches the ranks at different
/// times, and they must all stop after the same step).
pub(super) fn any_stops(
    group: &dyn Collective,
    stop: bool,
    step: usize,
) -> Result<bool, TrainError> {
    if group.size() == 1 {
        return Ok(stop);
    }
    let mut buf = [f32::from(u8::from(stop))];
    group
        .all_reduce_sum(&mut buf, &format!("the stop flags of step {}", step + 1))
        .map_err(|e| TrainError::Collective(e.to_string()))?;
    Ok(buf[0] > 0.0)
}

/// Appends each parameter's presence flag and gradient (zeros when absent) to `buf`, and
/// notes the gradients' device.
struct Flatten<'a> {
    grads: &'a GradientsParams,
    buf: Vec<f32>,
    device: Option<Device>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match self.grads.get::<D>(param.id) {
            Some(g) => {
                self.device.get_or_insert_with(|| g.device());
                self.buf.push(1.0);
                self.buf.extend(g.into_data().iter::<f32>());
            }
            None => {
                let n = param.val().shape().num_elements();
                self.buf.push(0.0);
                self.buf.extend(std::iter::repeat_n(0.0, n));
            }
        }
    }
}

/// Replaces each gradient by its sum from `buf` (in [`Flatten`]'s layout); a parameter no rank
/// had a gradient for keeps none.
struct Unflatten<'a> {
    grads: GradientsParams,
    buf: &'a [f32],
    device: &'a Device,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let dims = param.val().dims();
        let n = dims.iter().product::<usize>();
        let (head, rest) = self.buf.split_at(1 + n);
        self.buf = rest;
        self.grads.remove::<D>(param.id);
        if head[0] > 0.0 {
            let data = TensorData::new(head[1..].to_vec(), dims);
            self.grads
                .register(param.id, Tensor::<D>::from_data(data, self.device));
        }
    }
}
