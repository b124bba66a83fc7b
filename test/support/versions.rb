# frozen_string_literal: true

# What this run tests on, in one line (bin/test prints it first): the OS, Ruby, and the versions of
# the gems and servers the suite drives, as bin/setup resolved them (Gemfile.lock; railties from
# the installed gems, as the Rails tests' own Gemfile resolves it).
require "bundler"

root = File.expand_path("../..", __dir__)
locked = Bundler::LockfileParser.new(File.read(File.join(root, "Gemfile.lock"))).specs.to_h do |spec|
  [spec.name, spec.version.to_s]
end
railties = Gem::Specification.find_all_by_name("railties").max_by(&:version)&.version

def command_version(*command, pattern)
  IO.popen(command, err: File::NULL, &:read)[pattern, 1] || "?"
rescue SystemCallError
  "not installed"
end

postgres = Dir["/usr/lib/postgresql/*/bin/postgres"].max_by { |path| path[%r{/(\d+)/bin}, 1].to_i }
os = File.exist?("/etc/os-release") ? File.read("/etc/os-release")[/^PRETTY_NAME="?([^"\n]*)/, 1] : RUBY_PLATFORM
# Where a gem came from: a Debian package (its files under /usr), else the gem server (GEM_HOME:
# the leg of a Ruby series Debian's gem packages are not built for, bin/ruby-env).
def origin(name, version)
  path = Gem::Specification.find_all_by_name(name, version).first&.full_gem_path
  return "" unless path

  path.start_with?("/usr/") ? "" : " (gem server)"
end

parts = ["Ruby #{RUBY_VERSION}#{' (Debian experimental)' if ENV['HEAPCAPTURE_RUBY']}"]
{ "puma" => "puma", "Sidekiq" => "sidekiq", "minitest" => "minitest", "pg" => "pg", "redis" => "redis",
  "rack" => "rack", "aws-sigv4" => "aws-sigv4", "aws-sdk-s3" => "aws-sdk-s3" }.each do |label, gem|
  version = locked[gem]
  parts << (version ? "#{label} #{version}#{origin(gem, version)}" : "#{label} not in the bundle")
end
parts << "Rails (railties) #{railties ? "#{railties}#{origin('railties', railties.to_s)}" : 'not installed'}"
parts << "PostgreSQL #{postgres ? command_version(postgres, '--version', /(\d+(?:\.\d+)*)/) : 'not installed'}"
parts << "redis-server #{command_version('redis-server', '--version', /v=(\S+)/)}"
puts "tested on #{os}: #{parts.join(', ')} (gems from Debian's packages unless said)"
