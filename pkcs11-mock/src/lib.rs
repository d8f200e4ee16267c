//! A fault-injecting PKCS#11 module that forwards to a real one (test tool; never shipped).
