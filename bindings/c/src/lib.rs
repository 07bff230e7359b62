//! C face (to come).
