//! Hanko's issuance log and serial reservation on SQLite and PostgreSQL.
