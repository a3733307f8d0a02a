//! AWS KMS backend (see issue 4). Built lazily so cold start does not pay for it.
