# frozen_string_literal: true

require "test_helper"
require "openssl"
require "uri"
require "aws-sigv4"

# Thousands of random requests signed by HeapCapture::SigV4 and by Debian's aws-sigv4 gem
# (Aws::Sigv4::Signer, in its S3 mode: no path escaping or normalisation). Their canonical requests
# and signatures must be identical, every one. The gem is given a URL whose path and query this
# test encodes itself (S3 rules, written here independently of the C encoder), so a mistake in
# our encoding shows up as a difference.
#
# Replay a run: HEAPCAPTURE_SIGV4_SEED=<seed> [HEAPCAPTURE_SIGV4_CASES=n] bin/test TEST=test/unit/sigv4_differential_test.rb
class SigV4DifferentialTest < HCTest::TestCase
  SEED = Integer(ENV.fetch("HEAPCAPTURE_SIGV4_SEED", "20261121"))
  SIGN_CASES = Integer(ENV.fetch("HEAPCAPTURE_SIGV4_CASES", "3000"))
  PRESIGN_CASES = [SIGN_CASES / 10, 1].max

  # Characters keys and query parts are drawn from: S3's awkward ones, spaces, unicode.
  KEY_CHARS = ([*"a".."z", *"A".."Z", *"0".."9"] +
               [" ", "  ", "+", "%", "~", "/", "=", "&", "?", "#", "-", "_", ".", "!", "*", "'", "(", ")",
                ":", "@", "$", ",", ";", "[", "]", "ü", "é", "ሴ", "日本", "😀", "%20", "%2F", "..", "//"]).freeze
  # No double quote: the gem leaves a value that starts and ends with '"' unfolded (the AWS suite's
  # get-header-value-trim says to fold it, as we do). No \v or \f: we refuse them as control characters.
  VALUE_CHARS = ([*"a".."z", *"A".."Z", *"0".."9"] +
                 [" ", "   ", "\t", " \t ", "\n ", "\r\n\t", "-", "_", ";", "=", ",", "/", "+", ":", "ü", "ሴ", "(", ")"]).freeze
  # Never random: names the gem treats specially (unsigned, or taken as its inputs).
  RESERVED_HEADERS = %w[host authorization expect x-amzn-trace-id x-amz-date x-amz-security-token
                        x-amz-content-sha256].freeze
  TOKEN_CHARS = [*"a".."z", *"A".."Z", *"0".."9", "+", "/", "="].freeze
  HOSTS = ["examplebucket.s3.amazonaws.com", "s3.us-west-2.amazonaws.com", "127.0.0.1:9000",
           "localhost:4569", "my.bucket.s3.eu-central-1.amazonaws.com"].freeze
  REGIONS = %w[us-east-1 eu-west-3 ap-southeast-2 us-gov-west-1].freeze
  METHODS = %w[GET PUT POST DELETE HEAD PATCH].freeze

  def test_the_gem_runs_its_own_ruby_signer
    refute Aws::Sigv4::Signer.use_crt?, "aws-crt is loaded: the gem would not expose its canonical request"
    # Debian 12 has 1.5.1, Debian 13 1.10.1: both sign as the Ruby signer always did.
    assert_operator Gem::Version.new(Aws::Sigv4::VERSION), :>=, Gem::Version.new("1.5")
  end

  def test_sign_matches_the_aws_sigv4_gem
    rng = Random.new(SEED)
    mismatches = []
    SIGN_CASES.times do |i|
      input = random_sign_input(rng)
      ours = HeapCapture::SigV4.sign(**input[:ours])
      theirs = gem_signer(input).sign_request(**input[:gem])
      same = ours[:canonical_request] == theirs.canonical_request &&
             ours[:string_to_sign] == theirs.string_to_sign &&
             ours[:headers]["authorization"] == theirs.headers["authorization"] &&
             ours[:headers]["x-amz-date"] == theirs.headers["x-amz-date"] &&
             ours[:headers]["x-amz-security-token"] == theirs.headers["x-amz-security-token"]
      mismatches << report("sign", i, input, ours[:canonical_request], theirs.canonical_request) unless same
    end
    puts "sigv4 differential: #{SIGN_CASES} signed requests, seed #{SEED}, #{mismatches.size} mismatches " \
         "(aws-sigv4 #{Aws::Sigv4::VERSION})"
    assert_empty mismatches, mismatches.first(3).join("\n")
  end

  def test_presign_matches_the_aws_sigv4_gem
    rng = Random.new(SEED + 1)
    mismatches = []
    PRESIGN_CASES.times do |i|
      input = random_presign_input(rng)
      ours = HeapCapture::SigV4.presign(**input[:ours])
      signer = gem_signer(input)
      url = signer.presign_url(**input[:gem])
      theirs = decode_query(url.query)
      same = ours[:query].sort == theirs.sort && ours[:query].last[0] == "X-Amz-Signature" &&
             ours[:signature] == theirs.assoc("X-Amz-Signature")&.last &&
             ours[:query_string] == ours[:query].map { |n, v| "#{s3_encode(n)}=#{s3_encode(v)}" }.join("&")
      next if same

      unsigned = URI(url.to_s.sub(/&X-Amz-Signature=\h+\z/, ""))
      gem_creq = signer.send(:canonical_request, input[:gem][:http_method], unsigned,
                             { "host" => input[:ours][:host] }, HeapCapture::SigV4::UNSIGNED_PAYLOAD)
      mismatches << report("presign", i, input, ours[:canonical_request], gem_creq)
    end
    puts "sigv4 differential: #{PRESIGN_CASES} presigned URLs, seed #{SEED + 1}, #{mismatches.size} mismatches"
    assert_empty mismatches, mismatches.first(3).join("\n")
  end

  private

  # S3's encoding, written here on its own: every byte but A-Z a-z 0-9 - . _ ~ (and '/' in a
  # path) becomes %XX, upper-case.
  def s3_encode(text, keep_slash: false)
    allowed = keep_slash ? %r{[A-Za-z0-9\-._~/]} : /[A-Za-z0-9\-._~]/
    text.b.each_char.map { |c| c.match?(allowed) ? c : format("%%%02X", c.ord) }.join
  end

  def decode_query(query)
    query.split("&").map do |pair|
      pair.split("=", 2).map { |part| part.b.gsub(/%(\h\h)/) { Regexp.last_match(1).hex.chr }.force_encoding("UTF-8") }
    end
  end

  def gem_signer(input)
    o = input[:ours]
    Aws::Sigv4::Signer.new(service: o[:service], region: o[:region], access_key_id: o[:access_key_id],
                           secret_access_key: o[:secret_access_key], session_token: o[:session_token],
                           uri_escape_path: false, normalize_path: false, apply_checksum_header: false)
  end

  def report(kind, index, input, ours, theirs)
    "#{kind} case #{index} differs (replay: HEAPCAPTURE_SIGV4_SEED=#{SEED}):\n" \
      "input: #{input[:ours].inspect}\n--- our canonical request\n#{ours}\n--- aws-sigv4's\n#{theirs}\n"
  end

  def random_text(rng, pool, min, max)
    Array.new(rng.rand(min..max)) { pool[rng.rand(pool.size)] }.join
  end

  def random_path(rng)
    "/" + Array.new(rng.rand(0..4)) { random_text(rng, KEY_CHARS, 0, 12) }.join("/")
  end

  # Names may repeat; a repeated name keeps its first value's emptiness, because the gem's sort
  # compares nil with a String (and raises) for "a=&a=x". Our order for that case is checked in
  # sigv4_test.rb.
  def random_query(rng)
    pairs = []
    rng.rand(0..5).times do
      name = !pairs.empty? && rng.rand < 0.3 ? pairs[rng.rand(pairs.size)][0] : random_text(rng, KEY_CHARS, 1, 8)
      empty = (first = pairs.assoc(name)) ? first[1].empty? : rng.rand < 0.25
      pairs << [name, empty ? "" : random_text(rng, KEY_CHARS, 1, 10)]
    end
    pairs
  end

  def random_case(rng, text)
    text.chars.map { |c| rng.rand < 0.5 ? c.upcase : c.downcase }.join
  end

  def random_headers(rng)
    headers = []
    rng.rand(0..5).times do
      name =
        if !headers.empty? && rng.rand < 0.3
          random_case(rng, headers[rng.rand(headers.size)][0]) # repeated, in any case
        else
          random_case(rng, ["x-amz-meta-", "x-custom-", "content-", "my_h."][rng.rand(4)] +
                           random_text(rng, [*"a".."z", *"0".."9", "-", "_"], 1, 8))
        end
      next if RESERVED_HEADERS.include?(name.downcase)

      headers << [name, random_text(rng, VALUE_CHARS, 0, 16)]
    end
    headers
  end

  def random_time(rng)
    rng.rand < 0.9 ? rng.rand(0..4_102_444_800) : rng.rand(0..HeapCapture::SigV4::LAST_SECOND)
  end

  def random_credentials(rng)
    { region: rng.rand < 0.8 ? REGIONS[rng.rand(REGIONS.size)] : random_text(rng, [*"a".."z", "-", *"0".."9"], 1, 15),
      service: rng.rand < 0.8 ? "s3" : random_text(rng, [*"a".."z", "-"], 1, 10),
      access_key_id: random_text(rng, [*"A".."Z", *"0".."9"], 16, 20),
      secret_access_key: random_text(rng, TOKEN_CHARS, 40, 40),
      session_token: rng.rand < 0.5 ? nil : random_text(rng, TOKEN_CHARS, 16, 300) }
  end

  def random_sign_input(rng)
    host = HOSTS[rng.rand(HOSTS.size)]
    path = random_path(rng)
    query = random_query(rng)
    headers = random_headers(rng)
    time = random_time(rng)
    amz_date = Time.at(time).utc.strftime("%Y%m%dT%H%M%SZ")
    body = Random.new(rng.rand(2**32)).bytes(rng.rand(0..64))
    payload = rng.rand < 0.2 ? HeapCapture::SigV4::UNSIGNED_PAYLOAD : OpenSSL::Digest::SHA256.hexdigest(body)
    headers << [random_case(rng, "x-amz-content-sha256"), payload] if rng.rand < 0.5 || payload.start_with?("U")
    headers.insert(rng.rand(0..headers.size), [random_case(rng, "x-amz-date"), amz_date]) if rng.rand < 0.5
    creds = random_credentials(rng)

    # The gem takes one value per name: a repeated header's values, each trimmed, joined with ','
    # (what SigV4 says to do), the folding left to the gem.
    gem_headers = { "host" => host, "x-amz-date" => amz_date }
    headers.group_by { |n, _| n.downcase }.each do |name, list|
      gem_headers[name] = list.size == 1 ? list[0][1] : list.map { |_, v| v.strip }.join(",")
    end
    url = "https://#{host}#{s3_encode(path, keep_slash: true)}"
    url += "?" + query.map { |n, v| "#{s3_encode(n)}=#{s3_encode(v)}" }.join("&") unless query.empty?
    { ours: { method: METHODS[rng.rand(METHODS.size)], host: host, path: path, query: query,
              headers: rng.rand < 0.5 ? headers : hash_with_arrays(headers), payload_sha256: payload,
              time: rng.rand < 0.5 ? time : Time.at(time).localtime("+05:30"), **creds },
      gem: { http_method: nil, url: url, headers: gem_headers, body: body } }
      .tap { |input| input[:gem][:http_method] = input[:ours][:method] }
  end

  # The Hash form of the headers argument: a repeated name's values as an Array, under the
  # name's first spelling (a Hash cannot keep "A: 1, a: 2, A: 3" in order otherwise).
  def hash_with_arrays(headers)
    spelling = {}
    headers.each_with_object({}) do |(name, value), hash|
      key = spelling[name.downcase] ||= name
      hash[key] = hash.key?(key) ? Array(hash[key]) + [value] : value
    end
  end

  def random_presign_input(rng)
    host = HOSTS[rng.rand(HOSTS.size)]
    path = random_path(rng)
    query = random_query(rng)
    time = random_time(rng)
    expires_in = rng.rand < 0.5 ? 3600 : rng.rand(1..HeapCapture::SigV4::MAX_EXPIRES_IN)
    creds = random_credentials(rng)
    url = "https://#{host}#{s3_encode(path, keep_slash: true)}"
    url += "?" + query.map { |n, v| "#{s3_encode(n)}=#{s3_encode(v)}" }.join("&") unless query.empty?
    method = METHODS[rng.rand(METHODS.size)]
    { ours: { method: method, host: host, path: path, query: query, time: Time.at(time), expires_in: expires_in,
              **creds },
      gem: { http_method: method, url: url, headers: { "host" => host }, time: Time.at(time),
             expires_in: expires_in, body_digest: HeapCapture::SigV4::UNSIGNED_PAYLOAD } }
  end
end
