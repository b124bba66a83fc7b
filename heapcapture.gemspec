# frozen_string_literal: true

require_relative "lib/heapcapture/version"

Gem::Specification.new do |spec|
  spec.name = "heapcapture"
  spec.version = HeapCapture::VERSION
  spec.summary = "On-demand heap dumps of a production Ruby process, shipped to S3"
  spec.description = <<~DESC
    heapcapture lets a puma worker or Sidekiq process dump its own heap when told to over
    PostgreSQL LISTEN/NOTIFY, without stopping the app for longer than a fork, and streams the
    gzipped dump to S3 as a SigV4-signed parallel multipart upload. A C extension on libpq,
    libcurl, OpenSSL, zlib and expat. Tested on Linux with Ruby 3.1 and 3.3 (Debian 12 and 13,
    puma 5 and 6, Sidekiq 6 and 7, Rails 6.1 and 7.2); Ruby 3.2 and 3.4+ are not tested.
  DESC
  spec.license = "MIT"
  spec.authors = ["heapcapture developers"]
  spec.required_ruby_version = ">= 3.1"

  spec.homepage = "https://github.com/heapcapture/heapcapture"
  # No homepage_uri: it is spec.homepage, and RubyGems 3.6 warns when two keys name one address.
  spec.metadata = {
    "source_code_uri" => spec.homepage,
    "changelog_uri" => "#{spec.homepage}/blob/main/CHANGELOG.md",
    "documentation_uri" => "#{spec.homepage}/tree/main/doc",
    "rubygems_mfa_required" => "true"
  }

  # Everything the code loads at run time (Ruby files, the Rake task file), the C sources the
  # gem compiles on install, and the documents README links. Never the extension a checkout built.
  spec.files = Dir["lib/**/*"].reject { |f| File.directory?(f) || f.end_with?(".so", ".bundle") } +
               Dir["ext/**/*.{c,h,rb}", "exe/*", "doc/*.md", "README.md", "CHANGELOG.md", "LICENSE"]
  spec.bindir = "exe"
  spec.executables = ["heapcapture"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/heapcapture/extconf.rb"]
end
