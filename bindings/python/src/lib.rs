//! Python face (to come).
