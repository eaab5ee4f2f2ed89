//! End-to-end tests of the real binary on real sockets.

mod lifecycle;
mod support;
