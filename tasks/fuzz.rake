# frozen_string_literal: true

# libFuzzer harnesses for the pure C modules: test/c/fuzz_<module>.c, built with clang,
# -fsanitize=fuzzer,address,undefined, run for FUZZ_SECONDS (default 60). Not part of test:c.

# Seeds for the XML fuzzer: the shapes S3 sends.
FUZZ_S3_XML_SEEDS = {
  "seed-list" => "<ListBucketResult><IsTruncated>true</IsTruncated><Contents>" \
                 "<Key>a &amp; b</Key><Size>5</Size><LastModified>2026-11-21T20:30:42.000Z</LastModified></Contents>" \
                 "<NextContinuationToken>t</NextContinuationToken></ListBucketResult>",
  "seed-error" => "<Error><Code>SlowDown</Code><Message>m</Message><RequestId>r</RequestId></Error>",
  "seed-init" => "<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>"
}.freeze

# Seeds for the dump annotator: dump_all lines, sampled and not.
FUZZ_DUMP_ANNOTATE_SEEDS = {
  "seed-lines" => "\x07{\"address\":\"0x1f\", \"type\":\"STRING\", \"value\":\"a\", \"memsize\":40, " \
                  "\"flags\":{\"wb_protected\":true}}\n{\"type\":\"ROOT\", \"root\":\"vm\"}\n" \
                  "{\"address\":\"0x2\", \"type\":\"OBJECT\"}"
}.freeze

# Seeds for the dump line scanner: real dump_all lines of this Ruby (with allocation sites on), in
# pieces of 40 lines, and Ruby 3.1's broken line shape (ruby/ruby#6161).
FUZZ_DUMP_SCAN_SEEDS = lambda do
  script = 'require "objspace"; ObjectSpace.trace_object_allocations_start; x = ["a" * 30, {b: 1}, 1.5, :s, /r/]; ' \
           "print ObjectSpace.dump_all(output: :string); x"
  lines = IO.popen([RbConfig.ruby, "-e", script], &:read).lines
  seeds = lines.each_slice(40).first(50).each_with_index.to_h { |slice, i| ["seed-dump-#{i}", slice.join] }
  seeds.merge("seed-6161" => "{\"address\":\"0x7f1\", \"method\":\"\xC3\xBF\x00stale\nbytes\", \"memsize\":40}")
end

# Defines fuzz:<name>: builds test/c/fuzz_<name>.c with the modules and libraries it includes
# (c_needs, tasks/c_tests.rake) and runs it.
def define_fuzz_task(name, description, seeds: {})
  desc "Fuzz #{description} for FUZZ_SECONDS seconds (default 60) with libFuzzer + ASan/UBSan"
  task name do
    mkdir_p C_BUILD_DIR
    bin = File.join(C_BUILD_DIR, "fuzz_#{name}")
    seconds = Integer(ENV.fetch("FUZZ_SECONDS", "60"))
    src = "#{C_TEST_DIR}/fuzz_#{name}.c"
    modules, libs = c_needs(src)
    sh "clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I#{C_EXT_DIR} " \
       "#{c_pkg_flags('cflags', libs)} -o #{bin} #{src} #{modules.join(' ')} #{c_pkg_flags('libs', libs)}"
    corpus = File.join(C_BUILD_DIR, "fuzz_#{name}_corpus")
    mkdir_p corpus
    (seeds.respond_to?(:call) ? seeds.call : seeds).each { |file, text| File.binwrite(File.join(corpus, file), text) }
    # Inputs that once crashed it: replayed first, as part of the corpus.
    Dir[File.join(C_TEST_DIR, "fuzz_regressions", name.to_s, "*")].each { |file| cp file, corpus, verbose: false }
    # A new crash lands in the build folder (libFuzzer's default is the current one: the checkout).
    sh({ "ASAN_OPTIONS" => "detect_leaks=1" }, bin, "-max_total_time=#{seconds}", "-max_len=4096",
       "-artifact_prefix=#{C_BUILD_DIR}/fuzz_#{name}-", corpus)
  end
end

namespace :fuzz do
  define_fuzz_task :sigv4, "sigv4.c"
  define_fuzz_task :s3_xml, "s3_xml.c (S3's XML answers)", seeds: FUZZ_S3_XML_SEEDS
  define_fuzz_task :dump_annotate, "dump_annotate.c (dump_all's lines)", seeds: FUZZ_DUMP_ANNOTATE_SEEDS
  define_fuzz_task :dump_scan, "dump_scan.c (dump_all's lines, checked and read)", seeds: FUZZ_DUMP_SCAN_SEEDS
end
