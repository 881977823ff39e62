// Device discovery and the plain memory helpers of cuda_backend.h.
#include <cstdio>
#include <string>

#include "cuda_backend.h"
#include "cuda_check.cuh"

namespace cachesage {

namespace {

using cuda_detail::check;

// Never launched: asking for its attributes tells whether this build's
// fatbinary (machine code or PTX) has an image the device can load.
__global__ void probeKernel() {}

struct Probe {
  bool available = false;
  std::string reason;
};

std::string describeError(const char* call, cudaError_t status) {
  return std::string(call) + " returned " + cudaGetErrorName(status) + ": " +
         cudaGetErrorString(status);
}

Probe probeDevice() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for later calls to trip on
    std::string reason = describeError("cudaGetDeviceCount", status);
    // The static runtime reports a missing driver as an old one.
    if (status == cudaErrorInsufficientDriver) {
      reason += " (no NVIDIA driver, or one older than CUDA " +
                std::to_string(CUDART_VERSION / 1000) + "." +
                std::to_string(CUDART_VERSION % 1000 / 10) + " needs)";
    }
    return {false, reason};
  }
  if (count == 0) return {false, "cudaGetDeviceCount found no device"};
  int device = 0;
  status = cudaGetDevice(&device);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return {false, describeError("cudaGetDevice", status)};
  }
  cudaFuncAttributes attributes{};
  status = cudaFuncGetAttributes(&attributes, probeKernel);
  if (status != cudaSuccess) {
    cudaGetLastError();
    cudaDeviceProp properties{};
    std::string which = "device " + std::to_string(device);
    if (cudaGetDeviceProperties(&properties, device) == cudaSuccess) {
      which += " (" + std::string(properties.name) + ", compute " +
               std::to_string(properties.major) + "." + std::to_string(properties.minor) + ")";
    }
    cudaGetLastError();
    return {false, which + " cannot run this build's kernels: " +
                       describeError("cudaFuncGetAttributes", status)};
  }
  return {true, ""};
}

}  // namespace

bool cudaAvailable(std::string* why) {
  static const Probe probe = probeDevice();
  if (!probe.available && why != nullptr) *why = probe.reason;
  return probe.available;
}

std::string cudaDeviceDescription() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f",
                static_cast<double>(properties.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return std::string(properties.name) + " (compute " + std::to_string(properties.major) + "." +
         std::to_string(properties.minor) + ", " +
         std::to_string(properties.multiProcessorCount) + " SMs, " + memory + " GiB)";
}

void synchronizeCuda() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

void copyBytesCuda(void* destination, const void* source, size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDefault, nullptr),
        "cudaMemcpyAsync (copyBytesCuda)");
}

CudaDeviceBuffer::CudaDeviceBuffer(size_t bytes) {
  if (bytes == 0) return;
  check(cudaMalloc(&data_, bytes), "cudaMalloc");
  bytes_ = bytes;
}

CudaDeviceBuffer::~CudaDeviceBuffer() { cudaFree(data_); }

CudaDeviceBuffer::CudaDeviceBuffer(CudaDeviceBuffer&& other) noexcept
    : data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

CudaDeviceBuffer& CudaDeviceBuffer::operator=(CudaDeviceBuffer&& other) noexcept {
  if (this != &other) {
    cudaFree(data_);
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

namespace {
void checkRange(size_t offset, size_t bytes, size_t size, const char* op) {
  if (offset > size || bytes > size - offset) {
    throw std::out_of_range(std::string("CudaDeviceBuffer::") + op + ": bytes [" +
                            std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                            ") are outside the buffer of " + std::to_string(size) + " bytes");
  }
}
}  // namespace

void CudaDeviceBuffer::upload(const void* source, size_t bytes, size_t offset) {
  checkRange(offset, bytes, bytes_, "upload");
  if (bytes == 0) return;
  check(cudaMemcpy(static_cast<uint8_t*>(data_) + offset, source, bytes, cudaMemcpyHostToDevice),
        "cudaMemcpy (upload)");
  // From pageable memory cudaMemcpy may return before the DMA lands, and the
  // backends' non-blocking streams are not ordered after the default stream.
  check(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize (upload)");
}

void CudaDeviceBuffer::download(void* destination, size_t bytes, size_t offset) const {
  checkRange(offset, bytes, bytes_, "download");
  if (bytes == 0) return;
  check(cudaMemcpy(destination, static_cast<const uint8_t*>(data_) + offset, bytes,
                   cudaMemcpyDeviceToHost),
        "cudaMemcpy (download)");
}

}  // namespace cachesage
