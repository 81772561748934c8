# cmake/install.cmake — what `cmake --install` puts under the prefix, the CMake package,
# moerun.pc and the Debian package (CPack). Included by the top-level CMakeLists.txt.
#
#   bin/        moerun moerun-analyze moerun-import moerun-place moerun-bench a2a-bench
#   lib/        libmoerun.so (+ soname links), libmoerun.a, cmake/moerun/, pkgconfig/moerun.pc
#   include/    moerun/*.h: the public API (self-contained; moerun/base/ stays internal)
#   share/doc/moerun/  README.md, docs/*.md;  share/moerun/jobs/  the job scripts
#   share/man/man1/    one page per program, from its --help (help2man, when found)
#
# libmoerun is comm + experts + runtime (with placement and the limited routers, moerun_router_limited) + replay (the routes of moerun --replay): the shared library links the per-folder archives
# whole (they are built position-independent); the static one is the same archives merged
# into one (ar MRI script, cmake/merge_archives.cmake). The programs keep linking the
# per-folder archives, so they do not depend on where libmoerun.so is installed.

# The dependencies' modules, as pkg-config names them; Requires.private serves --static
# (moerun.pc) and moerun::moerun_static (moerunConfig.cmake).
set(MOERUN_PC_REQUIRES "ompi-c")
set(MOERUN_PC_REQUIRES_PRIVATE "hdf5-openmpi inih libcjson openblas hwloc ucx")
set(MOERUN_LIB_PARTS moerun_runtime moerun_router_limited moerun_placement moerun_comm moerun_experts
  moerun_replay)
string(REPLACE ";" "," _parts_csv "${MOERUN_LIB_PARTS}")

# --- libmoerun.so -------------------------------------------------------------------------
# The library's code is the archives above, linked whole; its one source file says so.
add_library(moerun_shared SHARED cmake/libmoerun.c)
set_target_properties(moerun_shared PROPERTIES OUTPUT_NAME moerun EXPORT_NAME moerun
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  LINK_LIBRARY_OVERRIDE "WHOLE_ARCHIVE,${_parts_csv}")
target_link_libraries(moerun_shared PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${_parts_csv}>"
  PUBLIC MPI::MPI_C)
target_link_options(moerun_shared PRIVATE "LINKER:--no-undefined")
# Clients see the public headers only.
target_include_directories(moerun_shared INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
add_library(moerun::moerun ALIAS moerun_shared)

# --- libmoerun.a ----------------------------------------------------------------------------
set(MOERUN_STATIC_LIB ${PROJECT_BINARY_DIR}/libmoerun.a)
set(_parts "")
foreach(p ${MOERUN_LIB_PARTS})
  list(APPEND _parts "$<TARGET_FILE:${p}>")
endforeach()
add_custom_command(OUTPUT ${MOERUN_STATIC_LIB}
  COMMAND ${CMAKE_COMMAND} -DAR=${CMAKE_AR} -DOUT=${MOERUN_STATIC_LIB} "-DIN=${_parts}"
          -P ${PROJECT_SOURCE_DIR}/cmake/merge_archives.cmake
  DEPENDS ${MOERUN_LIB_PARTS} ${PROJECT_SOURCE_DIR}/cmake/merge_archives.cmake
  COMMENT "Merging the per-folder archives into libmoerun.a" VERBATIM)
add_custom_target(moerun_static ALL DEPENDS ${MOERUN_STATIC_LIB})

# --- what is installed ----------------------------------------------------------------------
install(TARGETS moerun_shared EXPORT moerunTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${MOERUN_STATIC_LIB} DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS moerun moerun-analyze moerun-import moerun-place moerun-bench a2a-bench
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Public headers: include/moerun/*.h (not base/, the internal helpers) and the generated
# version.h. Every one compiles on its own (tests/install checks that on the installed tree).
file(GLOB MOERUN_PUBLIC_HEADERS ${PROJECT_SOURCE_DIR}/include/moerun/*.h)
install(FILES ${MOERUN_PUBLIC_HEADERS} ${PROJECT_BINARY_DIR}/include/moerun/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/moerun)

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
  FILES_MATCHING PATTERN "*.md" PATTERN "*.txt")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/jobs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/moerun/jobs
  USE_SOURCE_PERMISSIONS)

# Man pages from each program's --help, written at install time (help2man runs the built
# program; moerun, moerun-bench and a2a-bench answer --help without mpirun). Skipped, with
# a message, when help2man is missing (jobs/install-deps.sh installs it).
find_program(MOERUN_HELP2MAN help2man)
if(MOERUN_HELP2MAN)
  set(_man_progs moerun "run expert-parallel Mixture-of-Experts layers under MPI"
    moerun-analyze "routing-efficiency report of moerun telemetry files"
    moerun-import "turn a routing log of a real model into moerun telemetry"
    moerun-place "plan an expert placement from moerun telemetry"
    moerun-bench "benchmark the moerun engine against BLAS and memcpy baselines"
    a2a-bench "benchmark the token exchanges (dispatch + combine)")
  while(_man_progs)
    list(POP_FRONT _man_progs _prog _what)
    install(CODE "
      set(_dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_MANDIR}/man1\")
      file(MAKE_DIRECTORY \"\${_dir}\")
      message(STATUS \"Installing: \${_dir}/${_prog}.1 (help2man)\")
      execute_process(COMMAND \"${MOERUN_HELP2MAN}\" --no-info --no-discard-stderr
          \"--version-string=${PROJECT_VERSION}\" \"--name=${_what}\"
          --section=1 \"--output=\${_dir}/${_prog}.1\" \"$<TARGET_FILE:${_prog}>\"
        RESULT_VARIABLE _rc)
      if(NOT _rc EQUAL 0)
        message(FATAL_ERROR \"help2man failed for ${_prog}: \${_rc}\")
      endif()")
  endwhile()
else()
  message(STATUS "help2man not found: no man pages are installed (docs and --help only)")
endif()

# --- CMake package: find_package(moerun CONFIG) -> moerun::moerun, moerun::moerun_static ----
include(CMakePackageConfigHelpers)
set(MOERUN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/moerun)
install(EXPORT moerunTargets NAMESPACE moerun:: DESTINATION ${MOERUN_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/moerunConfig.cmake.in
  ${PROJECT_BINARY_DIR}/moerunConfig.cmake INSTALL_DESTINATION ${MOERUN_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/moerunConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/moerunConfig.cmake ${PROJECT_BINARY_DIR}/moerunConfigVersion.cmake
  DESTINATION ${MOERUN_CMAKE_DIR})

# --- pkg-config: moerun.pc (relocatable: paths from ${pcfiledir}) --------------------------
file(RELATIVE_PATH MOERUN_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" MOERUN_PC_UP "${MOERUN_PC_UP}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/moerun.pc.in ${PROJECT_BINARY_DIR}/moerun.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/moerun.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- Debian package: cpack -G DEB (in the build directory) -----------------------------------
set(CPACK_PACKAGE_NAME moerun)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "moerun")
set(CPACK_PACKAGE_CONTACT "moerun maintainers <moerun@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "expert-parallel Mixture-of-Experts runtime over MPI, with HDF5 telemetry")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
# Runtime dependencies from the shared libraries the programs and libmoerun.so need
# (dpkg-shlibdeps); the -dev packages a client build needs are recommended.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "openmpi-bin")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS
  "libopenmpi-dev, libhdf5-openmpi-dev, libinih-dev, libcjson-dev, libopenblas-dev, libhwloc-dev, libucx-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# Stripped: the package is for running and linking; debug info stays in the build tree.
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
include(CPack)
