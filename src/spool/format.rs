//! Spool record codec (pure): fixed-width header, envelope, checksum, END marker.
