//! rclab suite
