//! The mio I/O core. Knows nothing about SMTP.
