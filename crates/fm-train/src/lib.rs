//! Data sources, the training loop, checkpoints and evaluation (lands with the 2-D end-to-end issue).
