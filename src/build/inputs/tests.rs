//! Tests of build::inputs.
