//! PKCS#11 signing for Hanko through cryptoki: token by label, keys, session pool, recovery.
