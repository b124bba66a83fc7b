# frozen_string_literal: true

require "uri"

module HCTest
  # The AWS SigV4 test suite in test/fixtures/sigv4-test-suite: which cases hold for S3, and each
  # case's request parsed from its .req file.
  module SigV4Suite
    DIR = File.expand_path("../fixtures/sigv4-test-suite", __dir__)
    # S3 does not normalise paths, so the path-normalisation cases do not apply (README.md there).
    NOT_FOR_S3 = %w[get-relative get-relative-relative get-slash get-slash-dot-slash
                    get-slash-pointless-dot get-slashes].freeze
    ACCESS_KEY_ID = "AKIDEXAMPLE"
    SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    TIME = Time.utc(2015, 8, 30, 12, 36, 0)

    Case = Struct.new(:name, :method, :host, :path, :query, :headers, :body, :session_token,
                      :creq, :sts, :authz, keyword_init: true)

    module_function

    def case_names
      Dir.children(DIR).select { |n| File.directory?(File.join(DIR, n)) && !n.start_with?("_") }
         .reject { |n| NOT_FOR_S3.include?(n) }.sort
    end

    def load(name)
      read = ->(ext) { File.binread(File.join(DIR, name, "#{name}.#{ext}")).force_encoding(Encoding::UTF_8) }
      creq = read.call("creq")
      request = parse_request(read.call("req"))
      # As botocore's runner does: a case signs with a session token when its canonical request
      # signs one (post-sts-header-after adds its token only after signing).
      token = creq[/^x-amz-security-token:(.*)$/, 1]
      Case.new(name: name, **request, session_token: token, creq: creq, sts: read.call("sts"),
               authz: read.call("authz"))
    end

    # Request line, headers (a continuation line joins the header before it, line break kept for
    # the signer to fold), body after the first blank line. Files may end without a newline.
    def parse_request(text)
      head, body = text.split(/\r?\n\r?\n/, 2)
      request_line, *header_lines = head.split(/\r?\n/)
      method, rest = request_line.split(" ", 2)
      target = rest.sub(%r{ HTTP/\d\.\d\z}, "")
      raw_path, raw_query = target.split("?", 2)
      query = (raw_query || "").split("&").map do |pair|
        name, value = pair.split("=", 2)
        [decode(name), decode(value || "")]
      end
      headers = []
      header_lines.each do |line|
        if line.match?(/\A[ \t]/) && !headers.empty?
          headers.last[1] += "\n#{line}"
        else
          name, value = line.split(":", 2)
          headers << [name, value]
        end
      end
      host = headers.find { |n, _| n.casecmp?("host") }[1]
      headers.reject! { |n, _| n.casecmp?("host") }
      { method: method, host: host, path: decode(raw_path), query: query, headers: headers, body: body || "" }
    end

    # Percent-decoding only ('+' stays '+'), into UTF-8.
    def decode(text)
      text.b.gsub(/%([0-9A-Fa-f]{2})/) { Regexp.last_match(1).hex.chr }.force_encoding(Encoding::UTF_8)
    end
  end
end
