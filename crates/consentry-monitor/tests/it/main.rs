//! Integration tests of the monitor: Consentry and entra-sim on loopback, sweeps driven directly, time moved
//! with Consentry's clock; faults injected by the simulator.

mod faults;
mod monitor;
mod pending;
mod throttled;
