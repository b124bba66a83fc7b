# frozen_string_literal: true

require "fileutils"

module HCTest
  # The smallest Rails app that boots like a real one: a Gemfile, config/application.rb,
  # environment.rb, an initializer for heapcapture, a Rakefile that loads the app's tasks, its
  # development log. Its own Gemfile keeps Rails out of the suite's bundle (railties would load its
  # minitest plugin into every test run). Used by rails_app_test.rb (heapcapture from this checkout
  # through RUBYLIB) and gem_package_test.rb (heapcapture as the installed gem, named in the Gemfile).
  module RailsApp
    module_function

    # Writes the app into dir. gems: extra Gemfile lines; initializer: the body of
    # config/initializers/heapcapture.rb.
    def write(dir, initializer:, gems: [])
      %w[config/initializers log tmp].each { |sub| FileUtils.mkdir_p(File.join(dir, sub)) }
      File.write(File.join(dir, "Gemfile"), <<~RUBY)
        source "https://rubygems.org"
        gem "railties" # Debian's ruby-railties
        gem "rake"
        #{gems.join("\n")}
      RUBY
      File.write(File.join(dir, "config/application.rb"), <<~RUBY)
        require "rails"
        require "heapcapture"

        module HeapCaptureRailsTest
          class Application < Rails::Application
            config.root = File.expand_path("..", __dir__)
            config.eager_load = false
            config.logger = ActiveSupport::Logger.new(File.expand_path("../log/development.log", __dir__))
          end
        end
      RUBY
      File.write(File.join(dir, "config/environment.rb"), <<~RUBY)
        require_relative "application"
        Rails.application.initialize!
      RUBY
      File.write(File.join(dir, "config/initializers/heapcapture.rb"), initializer)
      File.write(File.join(dir, "Rakefile"), <<~RUBY)
        require_relative "config/application"
        Rails.application.load_tasks
      RUBY
    end
  end
end
