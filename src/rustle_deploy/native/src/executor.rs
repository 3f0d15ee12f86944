//! owned by another helper (placeholder)
