//! owned by helper B (placeholder)
