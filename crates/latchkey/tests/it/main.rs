//! End-to-end tests of the real binary on real sockets.

mod faults;
mod lifecycle;
mod moving;
mod support;
