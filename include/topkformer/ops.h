// All differentiable ops.
#pragma once

#include "topkformer/ops/dropout.h"
#include "topkformer/ops/elementwise.h"
#include "topkformer/ops/embedding.h"
#include "topkformer/ops/index.h"
#include "topkformer/ops/layer_norm.h"
#include "topkformer/ops/loss.h"
#include "topkformer/ops/matmul.h"
#include "topkformer/ops/reduce.h"
#include "topkformer/ops/shape.h"
#include "topkformer/ops/softmax.h"
