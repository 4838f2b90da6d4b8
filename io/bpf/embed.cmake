# SPDX-License-Identifier: Apache-2.0
# cmake -DIN=<file> -DOUT=<header> -DNAME=<identifier> -P embed.cmake: writes a C++ header
# holding the file's bytes as `inline constexpr unsigned char NAME[]` (the BPF object, so lbd
# needs no file at run time).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR count "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" body "${body}")
file(WRITE ${OUT}.tmp "// Generated from ${IN} by io/bpf/embed.cmake. Do not edit.\n#pragma once\n\n#include <cstddef>\n\ninline constexpr unsigned char ${NAME}[] = {\n${body}\n};\ninline constexpr size_t ${NAME}Size = ${count};\n")
file(RENAME ${OUT}.tmp ${OUT})
