// Package config loads ratemon's configuration: one YAML file, the rule files
// it includes, and overrides from flags and environment variables.
//
// Loading is strict and complete. The file is decoded with unknown fields
// refused, defaults are applied in one place (Config.SetDefaults), and every
// section's Validate runs, together with the checks that span sections, such
// as a NATS retention long enough to rebuild every rule's window. All
// problems are collected and returned together as a *LoadError, sorted by
// file and line, each located by file, line, column and field path:
//
//	configs/ratemon.yaml:3:3: nats.stremm: unknown field (did you mean "stream"?)
//	configs/ratemon.yaml:9:13: rules[0].window: cannot parse "10 seconds" as a duration (write it like "10s")
//	configs/ratemon.yaml:12:12: rules[1].limit: must be between 1 and 1099511627776, got -5
//
// The position of a problem found by Validate, which knows only its path,
// comes from the YAML node tree of the file (position.go); a field the file
// leaves out is placed at its parent. Rules from an included file are
// numbered after the main file's rules, as in Config.Rules, and their
// problems name the included file and its lines.
//
// Every scalar setting also has a command-line flag and an environment
// variable, derived from its path by Settings, so that a field added to a
// section is reachable from the command line without more code. The order of
// precedence is defaults, then the file, then flags and environment
// (Config.ApplyOverrides), after which the whole configuration is validated
// again.
//
// The domain packages own their sections (limiter.Rule, pipeline.IngestConfig,
// pipeline.WorkerConfig) and their Validate methods; this package composes
// them and never the other way round.
package config
