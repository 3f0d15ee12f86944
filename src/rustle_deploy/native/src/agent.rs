//! The deploy agent.
