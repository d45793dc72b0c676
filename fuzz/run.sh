#!/usr/bin/env bash
# Fuzz one harness with libFuzzer: fuzz/run.sh NAME [SECONDS] [extra libFuzzer args]
#   e.g. fuzz/run.sh http_head 300
# Builds fuzz/fuzz_NAME.c with the whole library under clang -fsanitize=fuzzer,address,undefined
# into build-fuzz/, runs it on a scratch copy of fuzz/corpus/NAME (new finds are merged back into
# the corpus, minimised), and leaves crash-* files in build-fuzz/ if it finds anything.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: fuzz/run.sh NAME [SECONDS]}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
out=build-fuzz
mkdir -p "$out"
exe="$out/fuzz_$name"
# the embedded policy document is generated at build time (src/lib/meson.build does the same)
python3 src/lib/embed_text.py src/lib/policy.json "$out/policy_embedded.c" nono_policy_embedded_text
# shellcheck disable=SC2046
clang -g -O1 -std=c11 -D_GNU_SOURCE -DNONO_BUILDING_LIB -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Iinclude -Isrc/lib -o "$exe" "fuzz/fuzz_$name.c" \
	src/lib/*.c src/lib/proxy/*.c "$out/policy_embedded.c" \
	$(pkg-config --cflags --libs libseccomp jansson openssl) -lpthread
scratch="$out/corpus_$name"
mkdir -p "$scratch" "fuzz/corpus/$name"
cp -n "fuzz/corpus/$name"/* "$scratch"/ 2>/dev/null || true
(cd "$out" && "./fuzz_$name" -max_total_time="$secs" -max_len=65536 "corpus_$name" "$@")
# keep the corpus small: merge minimised new inputs back
"$exe" -merge=1 "fuzz/corpus/$name" "$scratch" >/dev/null 2>&1 || true
echo "corpus: $(ls "fuzz/corpus/$name" | wc -l) files in fuzz/corpus/$name"
