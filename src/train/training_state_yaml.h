// state.yaml of a checkpoint: TrainingState as YAML and back (private to src/train).
#pragma once

#include <string>

#include "topkformer/train/checkpoint.h"

namespace topkformer::train::detail {

// Doubles are written in their shortest form that reads back to the same
// value, so a resumed run continues from exactly the saved numbers.
std::string training_state_yaml(const TrainingState& state);

// Parses what training_state_yaml wrote. Every key is required and no other is
// allowed; errors start with `where` (the file) and name the key.
TrainingState parse_training_state(const std::string& text, const std::string& where);

}  // namespace topkformer::train::detail
