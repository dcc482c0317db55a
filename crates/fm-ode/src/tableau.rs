//! Butcher tableaus of the explicit Runge-Kutta methods.

/// An explicit Runge-Kutta method: stage `i` evaluates
/// `k_i = f(t + c_i h, y + h sum_{j<i} a_ij k_j)` and the step is `y + h sum_i b_i k_i`.
#[derive(Debug)]
pub(crate) struct Tableau {
    pub c: &'static [f64],
    pub a: &'static [&'static [f64]],
    pub b: &'static [f64],
    /// Weights of the embedded lower-order solution, for the error estimate.
    pub b_embedded: Option<&'static [f64]>,
    /// Whether the last stage is evaluated at the step's result (first same as last), so it can
    /// serve as the first stage of the next step.
    pub fsal: bool,
    /// Weights `c_i^mid` of a fourth-order solution at the step's midpoint,
    /// `y0 + h sum_i c_i^mid k_i`, for the method's own dense output ([`crate::dense`]).
    pub dense_mid: Option<&'static [f64]>,
}

pub(crate) const EULER: Tableau = Tableau {
    c: &[0.0],
    a: &[&[]],
    b: &[1.0],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

pub(crate) const MIDPOINT: Tableau = Tableau {
    c: &[0.0, 0.5],
    a: &[&[], &[0.5]],
    b: &[0.0, 1.0],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

pub(crate) const HEUN: Tableau = Tableau {
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[0.5, 0.5],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

pub(crate) const RK4: Tableau = Tableau {
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    b_embedded: None,
    fsal: false,
    dense_mid: None,
};

/// Dormand & Prince (1980), RK5(4)7FM: fifth-order solution, fourth-order embedded estimate.
pub(crate) const DOPRI5: Tableau = Tableau {
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ],
    b: &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
        0.0,
    ],
    b_embedded: Some(&[
        5179.0 / 57600.0,
        0.0,
        7571.0 / 16695.0,
        393.0 / 640.0,
        -92097.0 / 339200.0,
        187.0 / 2100.0,
        1.0 / 40.0,
    ]),
    fsal: true,
    // Shampine (1986), as torchdiffeq's DPS_C_MID.
    dense_mid: Some(&[
        6025192743.0 / 30085553152.0 / 2.0,
        0.0,
        51252292925.0 / 65400821598.0 / 2.0,
        -2691868925.0 / 45128329728.0 / 2.0,
        187940372067.0 / 1594534317056.0 / 2.0,
        -1776094331.0 / 19743644256.0 / 2.0,
        11237099.0 / 235043384.0 / 2.0,
    ]),
};
