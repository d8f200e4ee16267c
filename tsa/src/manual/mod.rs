//! The design reasoning behind hanko-tsa, as numbered chapters (after rustls's manual).
//!
//! * [`_01_past_bugs`]: what went wrong in other time-stamping code and in our
//!   dependencies, and what prevents it here.
//! * [`_02_profile`]: the RFC 3161 / ETSI EN 319 422 token profile Hanko issues, and
//!   the choices the standards leave open.
//! * [`_03_defaults`]: every default and why it is what it is.

pub mod _01_past_bugs;
pub mod _02_profile;
pub mod _03_defaults;
