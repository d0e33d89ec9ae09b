// The detectors speak of model::Alert (model/alert.h) as detect::Alert.
#pragma once
#include "model/alert.h"

namespace schedscope::detect {

using Alert = model::Alert;

}  // namespace schedscope::detect
