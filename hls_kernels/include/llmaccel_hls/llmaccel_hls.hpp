// Umbrella header: the whole kernel library.
#ifndef LLMACCEL_HLS_HPP
#define LLMACCEL_HLS_HPP
#include "config.hpp"
#include "primitives/bitstream.hpp"
#include "primitives/dsp_pair_mac.hpp"
#include "kernels/weight_decoder.hpp"
#include "kernels/linear.hpp"
#include "kernels/quantize.hpp"
#include "kernels/sfu.hpp"
#include "kernels/attention.hpp"
#include "kernels/decoder_layer.hpp"
#endif
