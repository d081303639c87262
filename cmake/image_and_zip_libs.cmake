# libzip and OpenCV as interface targets, for the trainer and the sanitizer build of its parsers
# (tests/sanitizers). Both are found directly:
#  - libzip checks a checkpoint's records against their CRC-32 before LibTorch parses them;
#    Debian's libzip CMake package also needs the zipcmp/zipmerge/ziptool programs.
#  - OpenCV decodes image folders (imgcodecs: PNG, JPEG, BMP; imgproc: resize); Debian's
#    libopencv-{core,imgproc,imgcodecs}-dev ship no CMake package (libopencv-dev, which pulls in
#    every OpenCV module, does).
find_path(CENTERLOSS_LIBZIP_INCLUDE_DIR zip.h REQUIRED)
find_library(CENTERLOSS_LIBZIP zip REQUIRED)
add_library(centerloss_libzip INTERFACE)
target_include_directories(centerloss_libzip SYSTEM INTERFACE ${CENTERLOSS_LIBZIP_INCLUDE_DIR})
target_link_libraries(centerloss_libzip INTERFACE ${CENTERLOSS_LIBZIP})

find_path(CENTERLOSS_OPENCV_INCLUDE_DIR opencv2/imgcodecs.hpp PATH_SUFFIXES opencv4 REQUIRED)
add_library(centerloss_opencv INTERFACE)
target_include_directories(centerloss_opencv SYSTEM INTERFACE ${CENTERLOSS_OPENCV_INCLUDE_DIR})
foreach(module core imgproc imgcodecs)
  find_library(CENTERLOSS_OPENCV_${module} opencv_${module} REQUIRED)
  target_link_libraries(centerloss_opencv INTERFACE ${CENTERLOSS_OPENCV_${module}})
endforeach()
