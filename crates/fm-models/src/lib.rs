//! Velocity networks for flow matching as burn modules (the time-conditioned MLP lands with the 2-D end-to-end issue).
