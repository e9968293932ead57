//! Host configuration: defaults, config file, environment and flags.
