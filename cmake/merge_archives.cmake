# cmake/merge_archives.cmake — merges static archives into one (libmoerun.a from the
# per-folder archives). Run with cmake -DAR=ar -DOUT=libmoerun.a "-DIN=a.a;b.a" -P this.
# Writes an ar MRI script (CREATE, ADDLIB each, SAVE) and runs ar -M on it; the output is
# written under a temporary name and renamed, so a failed merge leaves no half archive.
if(NOT AR OR NOT OUT OR NOT IN)
  message(FATAL_ERROR "merge_archives: AR, OUT and IN are required")
endif()
set(tmp "${OUT}.tmp")
file(REMOVE "${tmp}")
set(mri "CREATE ${tmp}\n")
foreach(a ${IN})
  if(NOT EXISTS "${a}")
    message(FATAL_ERROR "merge_archives: '${a}' does not exist")
  endif()
  string(APPEND mri "ADDLIB ${a}\n")
endforeach()
string(APPEND mri "SAVE\nEND\n")
file(WRITE "${OUT}.mri" "${mri}")
execute_process(COMMAND "${AR}" -M INPUT_FILE "${OUT}.mri" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${tmp}")
  message(FATAL_ERROR "merge_archives: ${AR} -M failed (${rc})")
endif()
file(RENAME "${tmp}" "${OUT}")
