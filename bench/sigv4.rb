# frozen_string_literal: true

# Signing cost: HeapCapture::SigV4 (C) against Debian's aws-sigv4 gem (Ruby), same request.
# Run: ruby -Ilib bench/sigv4.rb [ITERATIONS]
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "heapcapture"
require "aws-sigv4"

n = Integer(ARGV[0] || 20_000)
sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
time = Time.utc(2026, 11, 21, 20, 30, 42)
ours = { method: "PUT", host: "bucket.s3.us-east-1.amazonaws.com", path: "/dumps/2026-11-21T20-30-42Z-web.1-pid42-heap.ndjson.gz",
         query: [["partNumber", "3"], ["uploadId", "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"]],
         headers: { "x-amz-content-sha256" => sha, "content-length" => "8388608" }, payload_sha256: sha,
         region: "us-east-1", service: "s3", access_key_id: "AKIAIOSFODNN7EXAMPLE",
         secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", time: time }
signer = Aws::Sigv4::Signer.new(service: "s3", region: "us-east-1", access_key_id: ours[:access_key_id],
                                secret_access_key: ours[:secret_access_key], uri_escape_path: false,
                                apply_checksum_header: false)
gem_request = { http_method: "PUT", url: "https://#{ours[:host]}#{ours[:path]}?partNumber=3&uploadId=#{ours[:query][1][1]}",
                headers: ours[:headers].merge("x-amz-date" => time.strftime("%Y%m%dT%H%M%SZ")) }
raise "signatures differ" unless HeapCapture::SigV4.sign(**ours)[:headers]["authorization"] ==
                                 signer.sign_request(**gem_request).headers["authorization"]

def per_call_us(n)
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  n.times { yield }
  (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0) * 1e6 / n
end

c = per_call_us(n) { HeapCapture::SigV4.sign(**ours) }
r = per_call_us(n) { signer.sign_request(**gem_request) }
printf("sign, %d calls each (same signature checked first)\n", n)
printf("  heapcapture (C)   %8.2f us/call\n", c)
printf("  aws-sigv4 1.5.1   %8.2f us/call   (%.1fx heapcapture's time)\n", r, r / c)
