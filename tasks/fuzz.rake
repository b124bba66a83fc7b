# frozen_string_literal: true

# libFuzzer harnesses for the pure C modules: test/c/fuzz_<module>.c, built with clang,
# -fsanitize=fuzzer,address,undefined, run for FUZZ_SECONDS (default 60). Not part of test:c.
namespace :fuzz do
  desc "Fuzz sigv4.c for FUZZ_SECONDS seconds (default 60) with libFuzzer + ASan/UBSan"
  task :sigv4 do
    mkdir_p C_BUILD_DIR
    bin = File.join(C_BUILD_DIR, "fuzz_sigv4")
    seconds = Integer(ENV.fetch("FUZZ_SECONDS", "60"))
    sh "clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I#{C_EXT_DIR} " \
       "-o #{bin} #{C_TEST_DIR}/fuzz_sigv4.c #{C_EXT_DIR}/sigv4.c #{C_EXT_DIR}/errbuf.c -lcrypto"
    corpus = File.join(C_BUILD_DIR, "fuzz_sigv4_corpus")
    mkdir_p corpus
    sh({ "ASAN_OPTIONS" => "detect_leaks=1" }, bin, "-max_total_time=#{seconds}", "-max_len=4096", corpus)
  end

  desc "Fuzz s3_xml.c (S3's XML answers) for FUZZ_SECONDS seconds (default 60) with libFuzzer + ASan/UBSan"
  task :s3_xml do
    mkdir_p C_BUILD_DIR
    bin = File.join(C_BUILD_DIR, "fuzz_s3_xml")
    seconds = Integer(ENV.fetch("FUZZ_SECONDS", "60"))
    sh "clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I#{C_EXT_DIR} " \
       "-o #{bin} #{C_TEST_DIR}/fuzz_s3_xml.c #{C_EXT_DIR}/s3_xml.c -lexpat"
    corpus = File.join(C_BUILD_DIR, "fuzz_s3_xml_corpus")
    mkdir_p corpus
    # Seeds: the shapes S3 sends.
    File.write(File.join(corpus, "seed-list"), "<ListBucketResult><IsTruncated>true</IsTruncated><Contents>" \
               "<Key>a &amp; b</Key><Size>5</Size><LastModified>2026-11-21T20:30:42.000Z</LastModified></Contents>" \
               "<NextContinuationToken>t</NextContinuationToken></ListBucketResult>")
    File.write(File.join(corpus, "seed-error"), "<Error><Code>SlowDown</Code><Message>m</Message><RequestId>r</RequestId></Error>")
    File.write(File.join(corpus, "seed-init"), "<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>")
    sh({ "ASAN_OPTIONS" => "detect_leaks=1" }, bin, "-max_total_time=#{seconds}", "-max_len=4096", corpus)
  end
end

